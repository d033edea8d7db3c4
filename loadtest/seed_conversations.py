#!/usr/bin/env python3
"""Adds direct conversations and their messages to a SQLite data directory seeded by
`nova-bench seed --dataset s` (benchmark B3, conversation history; see docs/benchmarks.md).

    python3 loadtest/seed_conversations.py DATA_DIR [--conversations 2000] [--seed 42]

Deterministic for a seed: CONVERSATIONS distinct account pairs (from DATA_DIR/tokens.json), each
with 20-150 messages (uniform; a few deleted, a few edited) sent by either member, interleaved in
time over all conversations so that history pages read rows written at different times, as in
life. Rows follow migrations/sqlite/20260301000001_messaging.up.sql: read markers at the
conversation's start, activity and last message at its newest message. Writes
DATA_DIR/conversations.json: for each conversation one member's token, the conversation id and
its message count (what the k6 script checks every page against).
"""

import argparse
import json
import random
import sqlite3
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    users = json.loads((args.data_dir / "tokens.json").read_text())["users"]
    if len(users) < 2:
        print("need at least two users", file=sys.stderr)
        return 1

    pairs = set()
    while len(pairs) < args.conversations:
        a, b = rng.sample(range(len(users)), 2)
        pairs.add((min(a, b), max(a, b)))
    pairs = sorted(pairs)

    # Ids below every id the server generates later (Snowflakes of the current time are ~2^58).
    base_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    next_id = 1 << 40
    conversations = []
    for a, b in pairs:
        ua, ub = int(users[a]["id"]), int(users[b]["id"])
        conversations.append({"a": a, "b": b, "ua": ua, "ub": ub, "id": next_id,
                              "count": rng.randint(20, 150), "last": None})
        next_id += 1
    events = [i for i, c in enumerate(conversations) for _ in range(c["count"])]
    rng.shuffle(events)

    messages = []
    for n, i in enumerate(events):
        c = conversations[i]
        sender = c["ua"] if rng.random() < 0.5 else c["ub"]
        created = base_ms + n * 50
        roll = rng.random()
        edited = created + 1000 if roll < 0.02 else None
        deleted = created + 2000 if 0.02 <= roll < 0.03 else None
        messages.append((next_id, c["id"], sender, f"message {n} in conversation {c['id']}",
                         created, edited, deleted))
        c["last"] = next_id
        next_id += 1

    db = sqlite3.connect(args.data_dir / "nova.db")
    with db:
        db.executemany(
            "INSERT INTO conversations (id, kind, direct_key, creator_id, created_at, last_message_id) "
            "VALUES (?, 'DIRECT', ?, ?, ?, ?)",
            [(c["id"], f"{min(c['ua'], c['ub'])}:{max(c['ua'], c['ub'])}", c["ua"], base_ms, c["last"])
             for c in conversations])
        db.executemany(
            "INSERT INTO conversation_members (conversation_id, user_id, joined_at, last_read_id, last_activity_id) "
            "VALUES (?, ?, ?, ?, ?)",
            [(c["id"], u, base_ms, c["id"], c["last"]) for c in conversations for u in (c["ua"], c["ub"])])
        db.executemany(
            "INSERT INTO messages (id, conversation_id, sender_id, body, created_at, edited_at, deleted_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", messages)
    db.execute("ANALYZE")
    db.close()

    out = [{"token": users[c["a"] if rng.random() < 0.5 else c["b"]]["token"],
            "id": str(c["id"]), "messages": c["count"]} for c in conversations]
    (args.data_dir / "conversations.json").write_text(json.dumps({"conversations": out}))
    print(json.dumps({"conversations": len(conversations), "messages": len(messages),
                      "members": 2 * len(conversations), "seed": args.seed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
