"""Ids are prefixed, unique and sort in creation order."""

from __future__ import annotations

import os

from threadstore.ids import new_id


def test_id_has_prefix_and_26_sortable_characters() -> None:
    value = new_id("msg")
    prefix, body = value.split("_")
    assert prefix == "msg"
    assert len(body) == 26
    assert set(body) <= set("0123456789abcdefghjkmnpqrstvwxyz")


def test_ids_made_in_a_burst_sort_in_creation_order() -> None:
    ids = [new_id("msg") for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_repeat_its_parents_next_ids() -> None:
    new_id("run")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, "\n".join(new_id("run") for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    parent = {new_id("run") for _ in range(100)}
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    child = set(b"".join(chunks).decode().split("\n"))
    assert len(child) == 100
    assert not parent & child
