"""The request id rule: a sane client id is kept, anything else is replaced by a fresh, unique one."""

from __future__ import annotations

import asyncio
import os
import re

import pytest

from flashml.telemetry import request_context
from flashml.telemetry.request_context import begin, choose_request_id, is_sane, new_request_id, note_caller


@pytest.mark.parametrize("value", ["a", "abc-123", "trace:42.7_x", "A" * 128, "0f8fad5b-d9cb-469f-a165-70867728950e"])
def test_sane_client_ids_are_kept(value):
    assert is_sane(value)
    assert choose_request_id(value) == value


@pytest.mark.parametrize("value", ["", "A" * 129, "two words", "line\nbreak", "tab\t", "caf\u00e9", "\u0661\u0662",
                                   "quote\"", "semi;colon", "slash/", "<script>", "x" * 10_000])
def test_anything_else_is_replaced(value):
    assert not is_sane(value)
    chosen = choose_request_id(value)
    assert chosen != value and is_sane(chosen)


def test_a_missing_id_gets_a_new_one():
    assert is_sane(choose_request_id(None))


def test_new_ids_are_unique_and_share_this_process_prefix():
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert len({i.rpartition("-")[0] for i in ids}) == 1
    assert re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]+", ids[0])


def test_a_forked_process_draws_its_own_prefix():
    """Granian forks its worker from the process that imported us: the two must never hand out the same ids."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send one id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 200).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child_id.rpartition("-")[0] != new_request_id().rpartition("-")[0]


def test_each_task_sees_only_its_own_request():
    """As under Granian: each request is a task, so concurrent requests keep their own id and caller, and a
    caller noted in a child task (Litestar resolves dependencies in task groups) reaches the request."""
    async def one_request(client_id: str) -> tuple[str | None, str | None]:
        context = begin(client_id)

        async def dependency() -> None:  # a child task with a copy of the context, as anyio's task group makes
            note_caller(f"key-{client_id}")

        await asyncio.create_task(dependency())
        await asyncio.sleep(0)  # let the other request run in between
        return request_context.request_id.get(), context.caller

    async def main() -> list[tuple[str | None, str | None]]:
        return list(await asyncio.gather(*(asyncio.create_task(one_request(f"r{i}")) for i in range(20))))

    assert asyncio.run(main()) == [(f"r{i}", f"key-r{i}") for i in range(20)]
    assert request_context.request_id.get() is None  # nothing leaked out of the requests
    assert request_context.current() is None
