"""The scripted status pages the example action checks in demos and tests."""

from __future__ import annotations

import urllib.error
import urllib.request

from codepipeline_local import StatusPages


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback, http
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_each_path_answers_its_statuses_in_order_then_the_last_one() -> None:
    with StatusPages({"/warming-up": [503, 502, 200], "/healthy": [200]}) as pages:
        answers = [status(pages.url("/warming-up")) for _ in range(5)]
        healthy = status(pages.url("/healthy?token=query-secret"))
        unknown = status(pages.url("/nowhere"))

    assert answers == [503, 502, 200, 200, 200]
    assert (healthy, unknown) == (200, 404)
    assert pages.answered[-2:] == [("/healthy", 200), ("/nowhere", 404)]  # the query string is not recorded
    assert pages.url("/x").startswith("http://127.0.0.1:")
