"""Every error leaves a service as RFC 9457 problem+json: never a bare 500 or a stack trace."""

from __future__ import annotations

import httpx

PROBLEM = "application/problem+json"


async def test_validation_error_is_422_problem_listing_fields_without_echoing_input(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/widgets", json={"name": "x", "size": "big", "secret": "hunter2"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 422
    assert body["type"].endswith("/validation-error")
    assert body["request_id"] == response.headers["x-request-id"]
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "size"), ("body", "secret")}
    assert "hunter2" not in response.text


async def test_malformed_json_is_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/widgets", content=b'{"name": "x", ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/malformed-json")


async def test_domain_error_maps_to_its_status(client: httpx.AsyncClient) -> None:
    response = await client.get("/widgets/7")
    assert response.status_code == 404
    assert response.json()["detail"] == "Widget 7 does not exist."


async def test_malformed_path_parameter_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/widgets/not-a-number")
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_unknown_route_and_wrong_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)
    wrong = await client.delete("/widgets")
    assert (wrong.status_code, wrong.headers["content-type"]) == (405, PROBLEM)


async def test_crash_is_500_problem_without_internal_detail(client: httpx.AsyncClient) -> None:
    response = await client.get("/crash", headers={"x-request-id": "crash-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "crash-1"
    assert response.json()["request_id"] == "crash-1"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
