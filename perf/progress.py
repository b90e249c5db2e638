"""A plain-text progress bar (no tqdm): redrawn in place on a terminal; in a log, a line at each quarter."""
import sys
import time


class ProgressBar:
    def __init__(self, total, label, width=24, stream=None):
        self.total, self.label, self.width = total, label, width
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.start = time.perf_counter()
        self.quarters_shown = 0
        self.note = ""

    def _line(self, done, note):
        filled = self.width * done // max(self.total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        return f"{self.label} [{bar}] {done:>{len(str(self.total))}}/{self.total} {elapsed:5.0f}s  {note}"

    def update(self, done, note=""):
        """Show `done` of `total` steps with a note (e.g. the latest losses)."""
        self.note = note
        if self.interactive:
            self.stream.write("\r" + self._line(done, note) + "\x1b[K")
            self.stream.flush()
            return
        quarters = 4 * done // max(self.total, 1)
        if quarters > self.quarters_shown and done < self.total:
            self.quarters_shown = quarters
            print(self._line(done, note), file=self.stream, flush=True)

    def close(self):
        """Leave the bar's final state, with the latest note, on its own line."""
        line = self._line(self.total, self.note)
        self.stream.write("\r" + line + "\x1b[K\n" if self.interactive else line + "\n")
        self.stream.flush()
