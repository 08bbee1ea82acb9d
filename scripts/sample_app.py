#!/usr/bin/env python3
"""A tiny "web application" for the egress demo.

It serves HTTP on --listen (inbound: never affected by egress) and, for each
request, tries the outbound connections a compromised server might attempt:
its own API (allowed by the demo policy) and a mail relay it has no business
talking to (denied). Each attempt's outcome is part of the response.
"""
import argparse
import errno
import http.server
import socket


def attempt(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        s.sendall(b"ping\n")
        return "ALLOWED (connected)"
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno))
        if e.errno == errno.EPERM:
            return "DENIED by egress (%s: %s)" % (name, e.strerror)
        return "ALLOWED by egress, then %s" % name
    finally:
        s.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, default=18080)
    p.add_argument("--api", default="127.0.0.1:18081")
    p.add_argument("--forbidden", default="127.0.0.66:25")
    args = p.parse_args()
    api_host, api_port = args.api.rsplit(":", 1)
    bad_host, bad_port = args.forbidden.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = "outbound %s:%s -> %s\noutbound %s:%s -> %s\n" % (
                api_host, api_port, attempt(api_host, int(api_port)),
                bad_host, bad_port, attempt(bad_host, int(bad_port)))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *a):
            pass

    http.server.HTTPServer(("127.0.0.1", args.listen), Handler).serve_forever()


if __name__ == "__main__":
    main()
