"""A tiny DNS server for tests: answers A queries for one name with a fixed list of loopback addresses.

It stands in for Docker's embedded DNS (127.0.0.11) in front of nginx's `resolver`: the real nginx asks it over
UDP, exactly as it would ask Docker's. Only what nginx asks is answered: one question, type A, class IN.
"""

from __future__ import annotations

import socket
import struct
import threading
from types import TracebackType

TTL_S = 1
_A, _IN = 1, 1


class DnsServer:
    """`with DnsServer("proxy", ["127.0.0.1", "127.0.0.2"]) as dns:` serves on `dns.port` (127.0.0.1, UDP)."""

    def __init__(self, name: str, addresses: list[str]) -> None:
        self.name = name.lower()
        self.addresses = list(addresses)
        self.questions: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns :{self.port}", daemon=True)

    def __enter__(self) -> DnsServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self._sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self.answer(query)
            if answer is not None:
                self._sock.sendto(answer, peer)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        ident, _flags, count = struct.unpack("!HHH", query[:6])
        if count != 1:
            return None
        labels, at = [], 12
        while at < len(query) and query[at]:
            length = query[at]
            labels.append(query[at + 1 : at + 1 + length].decode(errors="replace"))
            at += 1 + length
        question_end = at + 5
        qtype, qclass = struct.unpack("!HH", query[at + 1 : question_end])
        asked = ".".join(labels).lower()
        self.questions.append(asked)
        known = asked == self.name and qtype == _A and qclass == _IN
        records = self.addresses if known else []
        rcode = 0 if asked == self.name else 3  # NXDOMAIN for any other name
        header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(records), 0, 0)
        body = query[12:question_end]
        for address in records:
            body += b"\xc0\x0c" + struct.pack("!HHIH", _A, _IN, TTL_S, 4) + socket.inet_aton(address)
        return header + body
