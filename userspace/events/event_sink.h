// Where egressd's event records go: stdout, a size-rotated file, syslog (the
// journal under systemd), or several of these at once.
//
// A sink receives each record as a RenderedEvent (event_render.h): it asks for
// the form it writes (the JSON line, or the text for syslog), and a form is
// rendered once per record however many sinks and followers want it.
//
// Every sink writes synchronously, from the caller's thread, with no queue of
// its own: memory stays bounded whatever the record rate, and a slow
// destination slows the caller instead (for egressd, its single loop; the
// kernel keeps counting exactly and reports ring-buffer overflow as
// events_lost). Delivery failures are counted in errors(), never fatal and
// never thrown.
//
// Not thread-safe: egressd calls its sink only from its single-threaded loop.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_SINK_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_SINK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/events/event_render.h"

namespace egress {

class EventSink {
 public:
  virtual ~EventSink();

  // Delivers one record. Its forms have no trailing newline; the sink adds
  // its own framing. Never throws; a failure increments errors().
  virtual void Write(RenderedEvent& event) = 0;

  // Records this sink failed to deliver (for a fan-out: summed over its
  // sinks).
  virtual uint64_t errors() const = 0;
};

// Writes each JSON line plus "\n" to file descriptor 1 with one writev(2), so
// lines are never interleaved or held in a buffer (line-buffered). A failed or
// short write (EPIPE, a full disk behind a redirect) counts as an error. The
// write blocks while the reader of a pipe does not read: under systemd stdout
// is the journal, which does.
std::unique_ptr<EventSink> StdoutSink();

// Appends JSON lines to `path`, opened O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC with
// mode 0640 (before umask); missing parent directories are created with mode
// 0750.
//
// Rotation: when the next line would take the file past `max_bytes`, the file
// is rotated first: path.<keep-1> -> path.<keep>, ..., path -> path.1 (the
// previous path.<keep>, the oldest, is replaced and so removed), and a new
// path is created. keep = 0 keeps no old files: path is removed. A single line
// longer than `max_bytes` is still written, alone in its file. Rotated files
// beyond `keep` left by an earlier, larger keep are not touched.
//
// Before each line the sink checks (one stat(2)) that `path` is still the file
// it has open; if it was removed or renamed away (logrotate without
// copytruncate, an admin's rm), a new file is created at `path`. The size
// limit follows the file's current size, so an external truncation is seen.
//
// Errors: InvalidArgument for an empty path, max_bytes = 0 or keep outside
// 0..1000; an errno status naming `path` (and the directory, for mkdir) when
// the file cannot be opened now. Once running, a line that cannot be written
// (the directory removed and not re-creatable, ENOSPC, ...) is counted in
// errors() and reopening is retried with the next line; the first failure
// after a success, and the recovery, are reported once on stderr. A write
// that fails halfway (ENOSPC) is cut back (ftruncate) to where its line
// began, so that the file holds whole JSON lines only; when that fails too,
// the next record starts on a new line (the partial line stays, alone).
absl::StatusOr<std::unique_ptr<EventSink>> RotatingFileSink(
    const std::string& path, uint64_t max_bytes, int keep);

// Sends each record's text (RenderText) to the syslog socket `socket_path`
// (/dev/log: under systemd, the journal) as syslog(3) would after
// openlog(ident, LOG_PID, LOG_DAEMON) and syslog(LOG_WARNING, "%s", ...):
// one datagram "<28>Mmm dd hh:mm:ss ident[pid]: EGRESS <VERDICT> <message>"
// (RFC 3164, local time), e.g.
//   "<28>Nov 24 17:51:43 egressd[812]: EGRESS DENIED Nov 24 17:51:43.371 web
//    curl[2187] -> 203.0.113.9:443/tcp DENIED (no matching rule)"
// where VERDICT is the record's verdict (DENIED, AUDIT, ALLOWED, UNEXPLAINED;
// VERDICT_7 for an unknown one), so `grep 'EGRESS DENIED'` or
// `journalctl -t egressd -g 'EGRESS DENIED'` finds refusals, like UFW's
// "[UFW BLOCK]". Only the text is sent: no structured journal fields (not
// yet).
//
// Its own AF_UNIX datagram socket, not syslog(3), which reports no failure:
// a record that cannot be sent (no socket at the path, the syslog daemon
// gone) is counted in errors(). Cannot connect when created: a warning on
// stderr; the connection is retried with every record, and after a failed
// send (a restarted syslog daemon binds a new socket), so records flow again
// once the daemon is back. The first failure after a success, and the
// recovery, are reported once on stderr.
std::unique_ptr<EventSink> SyslogSink(
    const std::string& ident, const std::string& socket_path = "/dev/log");

// Calls Write on every sink, in order; null entries are ignored. errors() is
// the sum of theirs.
std::unique_ptr<EventSink> FanOut(
    std::vector<std::unique_ptr<EventSink>> sinks);

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_SINK_H_
