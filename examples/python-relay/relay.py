#!/usr/bin/env python3
"""A complete vset relay in one short file of Python (psycopg 3 + redis-py).

It moves committed changes from PostgreSQL's ``vset.outbox`` into Redis with the
order-safe ``VSET``/``VDEL`` commands, using nothing but SQL (``vset.claim``,
``vset.current_version``) and the module's commands: any language can be a relay.

    python relay.py --postgres postgres://app@db/app --redis redis://cache:6379/0
"""
import argparse
import logging
import os
import re
import select
import signal
import socket
import time

import psycopg
import redis

log = logging.getLogger("vset-relay-py")


class Relay:
    def __init__(self, args):
        self.args = args
        self.stopping = False
        self.pg = self.listener = self.redis = None
        self.mode = "notify"
        self.seen = -1
        # Signal handlers only set a flag, so a batch in flight always finishes
        # (apply, then COMMIT) before we exit; the wakeup socket makes an idle
        # select() return at once instead of after the poll interval.
        self.wake, wake_w = socket.socketpair()
        for s in (self.wake, wake_w):
            s.setblocking(False)
        self._wake_w = wake_w  # keep the write end alive for the process lifetime
        signal.set_wakeup_fd(wake_w.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.on_signal)

    def on_signal(self, signum, _frame):
        log.info("signal %d: finishing the current batch, then exiting", signum)
        self.stopping = True

    def connect(self):
        self.pg = psycopg.connect(self.args.postgres, autocommit=True, connect_timeout=10)
        # A relay that hangs inside a batch must not hold its claimed rows forever:
        # PostgreSQL ends the session and the rows return to the queue.
        self.pg.execute("SET idle_in_transaction_session_timeout = '30s'")
        # How the database wakes relays (vset.wakeup()): 'shared_memory' when vset is
        # preloaded (wait with vset.wait_for_commit, no NOTIFY is sent), 'notify'
        # (LISTEN), or 'poll'. An extension without vset.wakeup() sends NOTIFY.
        try:
            self.mode = self.pg.execute("SELECT vset.wakeup()").fetchone()[0]
        except psycopg.errors.UndefinedFunction:
            self.mode = "notify"
        # A second connection only waits: notifications that arrive while the
        # first one runs a claim would otherwise be read (and lost to select()) by
        # that query, and a wait_for_commit call would block the claims.
        self.listener = psycopg.connect(self.args.postgres, autocommit=True, connect_timeout=10)
        if self.mode == "shared_memory":
            # -1: a value the counter never holds, so this returns the count at once.
            self.seen = self.listener.execute("SELECT vset.wait_for_commit(-1, 0)").fetchone()[0]
        elif self.mode == "notify":
            self.listener.execute("LISTEN vset")
        # Timeouts turn a hung server into an error (rollback, retry) instead of a
        # relay that waits forever with its rows claimed.
        self.redis = redis.Redis.from_url(self.args.redis, socket_timeout=10, socket_connect_timeout=5)
        self.warm_if_cold(self.redis.execute_command("VFLOOR"))
        log.info("connected (wake-up: %s)", self.mode)

    def close(self):
        for conn in (self.pg, self.listener, self.redis):
            try:
                if conn is not None:
                    conn.close()
            except Exception:  # closing a broken connection may fail; it is gone anyway
                pass
        self.pg = self.listener = self.redis = None

    def warm_if_cold(self, vfloor_reply):
        """A module restarted without its data accepts no VSET until a floor is set.

        Setting the floor to the sequence's current value turns everything older
        into a cache miss (safe), never into a stale entry."""
        info = dict(zip(vfloor_reply[::2], vfloor_reply[1::2]))
        if int(info[b"cold"]) == 1:
            version = self.pg.execute("SELECT vset.current_version()").fetchone()[0]
            self.redis.execute_command("VFLOOR", version)
            log.warning("redis was cold (no saved state): floor set to %d", version)

    def relay_batch(self):
        """Claims up to --batch-size rows, applies them in one pipeline, commits (acks)."""
        with self.pg.transaction():  # any exception below rolls back: rows come back
            rows = self.pg.execute(
                "SELECT cache_key, op, version, payload FROM vset.claim(%s::int)",
                (self.args.batch_size,),
            ).fetchall()
            pipe = self.redis.pipeline(transaction=False)
            # VFLOOR first, in the same round trip: if Redis restarted cold since the
            # last batch we notice here, even when the client reconnected silently.
            pipe.execute_command("VFLOOR")
            commands = []
            for key, op, version, payload in rows:
                if op == "set" and payload is not None:
                    command = ("VSET", key, version, payload)
                else:
                    if op != "del":  # malformed: a tombstone (a miss) is the safe answer,
                        log.error("outbox row %s/%s has op %r, payload %r: applying as delete",
                                  key, version, op, payload)  # and retrying would loop forever
                    command = ("VDEL", key, version)
                commands.append(command)
                pipe.execute_command(*command)
            # Error replies come back in place, so one bad key cannot fail the batch.
            replies = pipe.execute(raise_on_error=False)
            if isinstance(replies[0], Exception):
                raise replies[0]
            # A cold module rejected this batch (0s). Those keys hold nothing, i.e. are
            # misses, and every claimed version is <= the floor we set, so acking is safe.
            self.warm_if_cold(replies[0])
            for i, (command, reply) in enumerate(zip(commands, replies[1:]), start=1):
                if isinstance(reply, Exception):
                    replies[i] = self.clear_refused_key(command, reply)
        applied = sum(1 for r in replies[1:] if r == 1)
        log.debug("batch: %d claimed, %d applied (rest older than stored)", len(rows), applied)
        return len(rows)

    def clear_refused_key(self, command, error):
        """One key refused its row; the others must not wait for it (invariant 11),
        and it must not keep an older value. The same policy as vset-relay:
        WRONGTYPE means the key holds another type's value, e.g. a plain SET by the
        cache vset replaced; a tracked key belongs to vset: DEL it, send the row again.

        Any other error reply fails the batch (rolled back, retried), OOM included:
        under noeviction it refuses every write, and a key that cannot be written
        cannot be protected from a late older fill either."""
        key = command[1]
        if not str(error).startswith("WRONGTYPE"):
            raise error
        self.redis.delete(key)
        log.warning("%s held a value of another type (WRONGTYPE): deleted it and applied "
                    "the change", key)
        try:
            return self.redis.execute_command(*command)
        except redis.ResponseError as again:
            log.error("%s refused the change again right after DEL (%s): another writer "
                      "uses this tracked key", key, again)
            return 0

    def wait(self, timeout):
        """Sleeps until a tracked commit (shared-memory wake-up or NOTIFY), a signal
        or the timeout (the poll backstop)."""
        if self.mode == "shared_memory" and self.listener is not None:
            # Slices of at most 1 s, so a SIGTERM is noticed within a second.
            deadline = time.monotonic() + timeout
            while not self.stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                now = self.listener.execute(
                    "SELECT vset.wait_for_commit(%s, %s)", (self.seen, int(min(left, 1.0) * 1000))
                ).fetchone()[0]
                if now != self.seen:
                    self.seen = now
                    return
            return
        fds = [self.wake] + ([self.listener.fileno()] if self.listener else [])
        select.select(fds, [], [], timeout)
        try:
            while self.wake.recv(64):
                pass
        except BlockingIOError:
            pass
        if self.listener is not None:
            for _ in self.listener.notifies(timeout=0):  # consume; the table is the truth
                pass

    def run(self):
        backoff = 0.1
        while not self.stopping:
            try:
                if self.pg is None:
                    self.connect()
                while self.relay_batch() == self.args.batch_size and not self.stopping:
                    pass  # a full batch: more rows are probably waiting
                backoff = 0.1
                self.wait(self.args.poll_interval)
            except (psycopg.Error, redis.RedisError, OSError) as e:
                log.error("%s: %s (retrying in %.1fs)", type(e).__name__, e, backoff)
                self.close()
                self.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.close()
        log.info("stopped")


def positive_int(text):
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def duration(text):
    """Seconds from `250ms`, `1s`, `2m`, `1h` or a bare number of seconds (as vset-relay)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m or float(m[1]) == 0:
        raise argparse.ArgumentTypeError(f"must be a positive duration like 250ms, 1s, 2m; got {text!r}")
    return float(m[1]) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m[2]]


def main():
    p = argparse.ArgumentParser(description="vset relay: vset.outbox -> Redis VSET/VDEL")
    # Flag and variable names match vset-relay's, so one environment file serves both.
    env = os.environ.get
    p.add_argument("--postgres", default=env("VSET_POSTGRES_URL"),
                   help="PostgreSQL URL (env VSET_POSTGRES_URL)")
    p.add_argument("--redis", default=env("VSET_REDIS_URL"),
                   help="Redis URL (env VSET_REDIS_URL)")
    p.add_argument("--batch-size", type=positive_int, default=env("VSET_BATCH_SIZE", "1000"),
                   help="rows claimed per transaction (env VSET_BATCH_SIZE)")
    p.add_argument("--poll-interval", type=duration, default=env("VSET_POLL_INTERVAL", "1s"),
                   help="poll the outbox this often without a NOTIFY (env VSET_POLL_INTERVAL)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = p.parse_args()
    if not args.postgres or not args.redis:
        p.error("--postgres and --redis (or VSET_POSTGRES_URL / VSET_REDIS_URL) are required")
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    Relay(args).run()


if __name__ == "__main__":
    main()
