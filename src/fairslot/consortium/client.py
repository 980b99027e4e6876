"""The HTTP side of a member: fetch a page of another member's feed (from the member itself
or from a relay), and forward an appeal to an issuer. Every request is signed with this
hospital's member key; every answer is checked by the caller, never trusted as is."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from fairslot.clock import Clock
from fairslot.consortium.feed import FeedError, Page
from fairslot.consortium.signing import MemberKey, sign_request

__all__ = ["FEED_PATH", "FeedClient", "SourceDown"]

FEED_PATH = "/api/v1/consortium/feeds/{member}"
APPEAL_PATH = "/api/v1/consortium/appeals"


class SourceDown(Exception):
    """A member or relay did not answer usefully (network error, time-out, 5xx)."""


class FeedClient:
    def __init__(self, key: MemberKey, clock: Clock, client: httpx.Client | None = None,
                 timeout: float = 10.0) -> None:
        self.key = key
        self.clock = clock
        self.http = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def _target(self, base: str, path: str) -> tuple[str, str]:
        base = base.rstrip("/")
        prefix = urlsplit(base).path
        return base + path, prefix + path

    def fetch(self, base: str, member: str, since: int) -> Page:
        url, target = self._target(base, FEED_PATH.format(member=member))
        target += f"?since={since}"
        headers = sign_request(self.key, "GET", target, b"", self.clock.now())
        try:
            response = self.http.get(url, params={"since": since}, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceDown(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise SourceDown(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise FeedError(f"HTTP {response.status_code}: {_detail(response)}")
        try:
            return Page.from_json(response.json())
        except ValueError as exc:
            raise FeedError(f"the answer is not JSON: {exc}") from None

    def post_appeal(self, base: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url, target = self._target(base, APPEAL_PATH)
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {**sign_request(self.key, "POST", target, raw, self.clock.now()),
                   "Content-Type": "application/json"}
        try:
            response = self.http.post(url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceDown(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise SourceDown(f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            data = {}
        return response.status_code, data if isinstance(data, dict) else {}


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("detail") or data.get("code") or "")[:200]
    return ""
