"""Run every benchmark in bench/ (``make bench``); each writes bench/results/*.json.

Pass ``--quick`` for small sizes (a smoke run), otherwise each benchmark uses its own default
size (the issue targets: 1M customers, 50M events …).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

QUICK = {
    "bench_pipeline.py": ["--customers", "20000"],
    "bench_clv.py": ["--customers", "100000"],
    "bench_analytics.py": ["--quick"],
    "bench_profile.py": ["--customers", "100000"],
}


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    here = Path(__file__).parent
    failed = []
    for script in sorted(here.glob("bench_*.py")):
        args = QUICK.get(script.name, []) if quick else []
        print(f"== {script.name} {' '.join(args)}", flush=True)
        if subprocess.call([sys.executable, str(script), *args]) != 0:
            failed.append(script.name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
