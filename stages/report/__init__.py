"""Stage ``report``: results side by side with the published LLaRA numbers, as Parquet, Markdown and PNG.

The stage (``NAME``, ``run``, ``build_table``, ``render_markdown``) is ``stages.report.report``; its
config is ``stages.report.config.ReportConfig``, re-exported here (this package imports nothing
heavy). The published figures are the project's own copy ``published_results.csv`` (see
``published``).
"""

from stages.report.config import ReportConfig

__all__ = ["ReportConfig"]
