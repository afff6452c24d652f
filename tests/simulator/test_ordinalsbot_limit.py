"""OrdinalsBot's documented limit: 300 requests a minute on GET /order, then 429 + Retry-After;
create is limited to 2 requests per 10 s. Also the sliding-window limiter itself (pruning).
"""

from __future__ import annotations

from pipeline.providers.registry import REGISTRY
from pipeline.simulator.ratelimit import SlidingWindowLimiter

KEY = {"x-api-key": REGISTRY.sandbox_credentials()["ORDINALSBOT_API_KEY"]}


def test_the_301st_request_in_a_minute_is_refused(harness) -> None:
    order_id = harness.create("ordinalsbot")
    for _ in range(300):
        response = harness.client.get("/ordinalsbot/order", params={"id": order_id}, headers=KEY)
        assert response.status_code == 200
    refused = harness.client.get("/ordinalsbot/order", params={"id": order_id}, headers=KEY)
    assert refused.status_code == 429
    assert refused.json() == {"status": "error", "error": "rate limit exceeded"}
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Requests without the key are counted per client address: a separate budget.
    assert harness.client.get("/ordinalsbot/order", params={"id": order_id}).status_code == 200
    harness.advance(60)
    again = harness.client.get("/ordinalsbot/order", params={"id": order_id}, headers=KEY)
    assert again.status_code == 200


def test_retry_after_counts_down_to_the_oldest_request(harness) -> None:
    order_id = harness.create("ordinalsbot")
    for _ in range(150):
        harness.client.get("/ordinalsbot/order", params={"id": order_id}, headers=KEY)
    harness.advance(40)
    for _ in range(150):
        harness.client.get("/ordinalsbot/order", params={"id": order_id}, headers=KEY)
    refused = harness.client.get("/ordinalsbot/order", params={"id": order_id}, headers=KEY)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "20"
    harness.advance(20)
    for _ in range(150):
        ok = harness.client.get("/ordinalsbot/order", params={"id": order_id}, headers=KEY)
        assert ok.status_code == 200


def test_create_allows_two_requests_per_ten_seconds(harness) -> None:
    body = {
        "files": [{"name": "a.txt", "size": 10, "type": "text/plain", "url": "https://x"}],
        "receiveAddress": "bc1pexample",
    }
    codes = [harness.client.post("/ordinalsbot/order", json=body).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    harness.advance(10)
    assert harness.client.post("/ordinalsbot/order", json=body).status_code == 200


def test_limiter_prunes_idle_keys() -> None:
    limiter = SlidingWindowLimiter(limit=2, window_s=60.0)
    for index in range(100):
        assert limiter.hit(f"client-{index}", now_s=index * 61.0) is None
    assert limiter.active_keys() <= 2
    assert limiter.hit("a", 0.0) is None and limiter.hit("a", 1.0) is None
    assert limiter.hit("a", 2.0) == 58
