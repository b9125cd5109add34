"""Logging never fails the code that logs."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from chassis.logging import configure_logging, get_logger


class _BrokenPipe(io.StringIO):
    def write(self, _: str) -> int:
        raise BrokenPipeError


def test_a_line_that_cannot_be_written_is_dropped_not_raised() -> None:
    configure_logging(service="chassis-tests", version="test")
    with redirect_stdout(_BrokenPipe()):
        get_logger("test").info("shutdown_signal", signal=15)  # the reader of stdout is gone
    closed = io.StringIO()
    closed.close()
    with redirect_stdout(closed):
        get_logger("test").warning("after_close")


def test_lines_are_json_with_the_service_and_level() -> None:
    configure_logging(service="chassis-tests", version="test")
    out = io.StringIO()
    with redirect_stdout(out):
        get_logger("test").info("something_happened", answer=42)
    line = out.getvalue().strip().splitlines()[-1]
    assert '"event":"something_happened"' in line
    assert '"service":"chassis-tests"' in line
    assert '"level":"info"' in line
    assert '"answer":42' in line
