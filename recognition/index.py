"""In-memory 1:N index of enrolled encodings.

A flat float32 matrix: at 10,000 persons x a few photos one probe is a few
milliseconds of numpy (it releases the GIL), so no ANN library is needed at
this scale; `bench/bench_faces.py` measures it.
"""

from __future__ import annotations

import threading

import numpy as np


class FaceIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._enc = np.empty((0, 128), dtype=np.float32)
        self._person: list[str] = []
        self._row: list[int] = []  # face_encodings.id

    def __len__(self) -> int:
        return len(self._person)

    def persons(self) -> int:
        return len(set(self._person))

    def load(self, rows: list[tuple[int, str, np.ndarray]]) -> None:
        with self._lock:
            self._row = [r[0] for r in rows]
            self._person = [r[1] for r in rows]
            self._enc = np.asarray([r[2] for r in rows], dtype=np.float32).reshape(-1, 128)

    def add(self, row_id: int, person_id: str, encoding: np.ndarray) -> None:
        with self._lock:
            self._row.append(row_id)
            self._person.append(person_id)
            self._enc = np.vstack([self._enc, encoding.astype(np.float32)[None, :]])

    def remove(self, row_id: int) -> None:
        with self._lock:
            if row_id not in self._row:
                return
            i = self._row.index(row_id)
            del self._row[i], self._person[i]
            self._enc = np.delete(self._enc, i, axis=0)

    def of_person(self, person_id: str) -> np.ndarray:
        with self._lock:
            idx = [i for i, p in enumerate(self._person) if p == person_id]
            return self._enc[idx].astype(np.float64)

    def nearest(self, probe: np.ndarray, k: int = 5, exclude: str | None = None) -> list[tuple[str, float]]:
        """The k closest persons (each once, by their closest photo), nearest first."""
        with self._lock:
            enc, persons = self._enc, self._person
        if len(persons) == 0:
            return []
        d = np.linalg.norm(enc - probe.astype(np.float32), axis=1)
        order = np.argsort(d)
        out: list[tuple[str, float]] = []
        seen: set[str] = set()
        for i in order:
            p = persons[i]
            if p in seen or p == exclude:
                continue
            seen.add(p)
            out.append((p, float(d[i])))
            if len(out) >= k:
                break
        return out
