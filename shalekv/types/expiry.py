"""The active expiry cycle: a background thread that deletes keys whose TTL passed,
like Redis's activeExpireCycle, but exact: it walks the expiry index (ordered by
deadline) instead of sampling, so it touches only keys that are due."""

from __future__ import annotations

import threading
import time

from shalekv.errors import ShaleError
from shalekv.types.keyspace import Store, Txn, expire_cycle

HZ = 10  # cycles per second, Redis's default
BATCH = 200  # keys per transaction
BUDGET = 0.025  # seconds of work per cycle at most (Redis: 25 % of a 100 ms tick)


class ExpiryCycle:
    def __init__(self, store: Store, thread: bool = True) -> None:
        """thread=False: the owner calls run_once() HZ times a second (the server does,
        from its event loop)."""
        self.store = store
        self.expired = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if thread:
            self._thread = threading.Thread(target=self._run, name="shalekv-expiry", daemon=True)
            self._thread.start()

    def run_once(self) -> int:
        """One cycle over every database; returns how many keys expired."""
        store = self.store
        deadline = time.monotonic() + BUDGET
        n = 0
        for db in range(store.databases):
            while store.counts[db][1] > 0 and time.monotonic() < deadline:
                with store.lock:
                    t = Txn(store)
                    k = expire_cycle(t, db, BATCH)
                    t.commit()
                n += k
                if k < BATCH:
                    break
        self.expired += n
        return n

    def _run(self) -> None:
        while not self._stop.wait(1 / HZ):
            try:
                self.run_once()
            except ShaleError:
                # The engine refuses writes (closed, background error): stop quietly;
                # lazy expiry on access still hides expired keys.
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
