"""One rule for JSON output, shared by the CLI and the reports: strict JSON, so NaN and
infinities become null and dates become ISO-8601 text."""

from __future__ import annotations

import math
from datetime import date
from typing import Any


def json_ready(o: Any) -> Any:
    """``o`` with NaN/inf → ``None`` and dates → ISO text, recursively through dicts and lists."""
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {str(k): json_ready(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [json_ready(v) for v in o]
    if isinstance(o, date):
        return o.isoformat()
    return o
