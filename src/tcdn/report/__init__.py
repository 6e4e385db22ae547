"""The report of a discovery: one static HTML page with its figures beside it.

``prepare`` keeps, in a results folder, what the page needs and the results files do not hold
(sample frames of each cluster, a 2-D map of the features); ``page`` builds the page from the
folder alone (``tcdn report``); ``figures`` draws its pictures; ``montage`` tiles frames.
"""

from __future__ import annotations

from tcdn._lazy import lazy_exports

__all__ = ["build_report", "write_report", "write_report_data"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "write_report_data": "tcdn.report.prepare",
        "write_report": "tcdn.report.prepare",
        "build_report": "tcdn.report.page",
    },
)
