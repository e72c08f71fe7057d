"""What users look at after a run: the HTML report, side-by-side compare sheets, the benchmark."""

from cleanplate.report.bench import BenchResult, run_bench
from cleanplate.report.compare import CompareResult, compare
from cleanplate.report.html import write_report

__all__ = ["BenchResult", "CompareResult", "compare", "run_bench", "write_report"]
