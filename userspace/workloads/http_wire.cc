#include "userspace/workloads/http_wire.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace egress::workloads {
namespace {

constexpr size_t kMaxLine = 4096;

}  // namespace

absl::StatusOr<ResponseHead> ParseResponseHead(absl::string_view head) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(head, "\r\n", absl::SkipEmpty());
  if (lines.empty() || !absl::StartsWith(lines[0], "HTTP/1.")) {
    return absl::InvalidArgumentError("not an HTTP/1.x response");
  }
  std::vector<absl::string_view> words =
      absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  ResponseHead out;
  if (words.size() < 2 || !absl::SimpleAtoi(words[1], &out.status) ||
      out.status < 100 || out.status > 599) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad HTTP status line '", lines[0], "'"));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad HTTP header line '", lines[i], "'"));
    }
    absl::string_view name = lines[i].substr(0, colon);
    absl::string_view value =
        absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
      out.chunked = absl::StrContains(absl::AsciiStrToLower(value), "chunked");
    } else if (absl::EqualsIgnoreCase(name, "Content-Length")) {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(value, &n)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad Content-Length '", value, "'"));
      }
      out.content_length = n;
    }
  }
  return out;
}

std::string GetRequest(absl::string_view target) {
  // The host is required by HTTP/1.1 and ignored by the runtime.
  return absl::StrCat("GET ", target,
                      " HTTP/1.1\r\nHost: runtime\r\nUser-Agent: egressd\r\n"
                      "Connection: close\r\n\r\n");
}

absl::Status ChunkedDecoder::Feed(absl::string_view in, std::string* out) {
  while (!in.empty() && state_ != State::kDone) {
    if (state_ == State::kData) {
      const size_t n = std::min<uint64_t>(remaining_, in.size());
      out->append(in.data(), n);
      in.remove_prefix(n);
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::kDataEnd;
      continue;
    }
    // The other states read a line up to CRLF.
    const size_t nl = in.find('\n');
    absl::string_view piece = in.substr(0, nl);
    line_.append(piece.data(), piece.size());
    if (line_.size() > kMaxLine) {
      return absl::InvalidArgumentError("chunk header line too long");
    }
    if (nl == absl::string_view::npos) return absl::OkStatus();
    in.remove_prefix(nl + 1);
    absl::string_view line = line_;
    if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
    switch (state_) {
      case State::kSize: {
        // Chunk extensions (";name=value") are allowed and ignored.
        absl::string_view hex = line.substr(0, line.find(';'));
        hex = absl::StripAsciiWhitespace(hex);
        if (hex.empty() || hex.size() > 15 ||
            !absl::SimpleHexAtoi(hex, &remaining_)) {
          return absl::InvalidArgumentError(
              absl::StrCat("bad chunk size line '", line, "'"));
        }
        state_ = remaining_ == 0 ? State::kTrailer : State::kData;
        break;
      }
      case State::kDataEnd:
        if (!line.empty()) {
          return absl::InvalidArgumentError("chunk data not followed by CRLF");
        }
        state_ = State::kSize;
        break;
      case State::kTrailer:
        if (line.empty()) state_ = State::kDone;
        break;
      case State::kData:
      case State::kDone:
        break;
    }
    line_.clear();
  }
  return absl::OkStatus();
}

}  // namespace egress::workloads
