#!/usr/bin/python3
"""A bucket of N synthetic objects for bench_scale's LIST measurement: it
answers ListObjectsV2 pages (1,000 keys, continuation tokens) made on the
fly, so 10^6 keys cost no disk. Keys are "list/k-%08d", sizes and ETags
derived from the index. No signature is checked. 127.0.0.1 only.

  list_server.py PORT_FILE N
"""
import hashlib
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

N = int(sys.argv[2])
PAGE = 1000


def key(i):
    return "list/k-%08d" % i


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        q = parse_qs(urlsplit(self.path).query)
        token = q.get("continuation-token", ["0"])[0]
        start = int(token) if token.isdigit() else 0
        end = min(start + PAGE, N)
        rows = []
        for i in range(start, end):
            etag = hashlib.md5(b"%d" % i).hexdigest()
            rows.append("<Contents><Key>%s</Key><LastModified>2026-01-01T00:00:"
                        "00.000Z</LastModified><ETag>&quot;%s&quot;</ETag><Size>%d"
                        "</Size></Contents>" % (key(i), etag, 1000 + i % 5000))
        more = end < N
        body = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>'
                "<KeyCount>%d</KeyCount><IsTruncated>%s</IsTruncated>%s%s"
                "</ListBucketResult>" % (
                    end - start, "true" if more else "false",
                    "<NextContinuationToken>%d</NextContinuationToken>" % end
                    if more else "", "".join(rows))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
