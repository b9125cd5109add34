"""What the export use cases can refuse; the chassis turns each into an RFC 9457 problem."""

from __future__ import annotations

from chassis.problems import ForbiddenError, NotFoundError


class ExportNotFoundError(NotFoundError):
    code, title = "export-not-found", "Export not found"


class ExportScopeForbiddenError(ForbiddenError):
    code, title = "export-scope-forbidden", "Only admins export every customer's orders"
