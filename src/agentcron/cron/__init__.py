"""Cron expressions: parse, next / prev / matches, validate, describe, presets.

```python
from agentcron.cron import CronExpression, CronError
e = CronExpression("0 0 L * *", tz="Europe/Berlin")
e.next(after)        # first fire strictly after `after` (aware) -> aware datetime | None
e.prev(before)       # last fire strictly before
e.matches(dt)        # bool
e.describe()         # "At 00:00 on the last day of the month"
CronExpression.validate("*/5 * * * * *")   # ValidationResult(valid, error, warnings, ...)
```

The syntax, the day-field rule and the DST rules are written out in
`agentcron.cron.expression` and in ``docs/cron.md``.
"""

from __future__ import annotations

from agentcron.cron.errors import CronError
from agentcron.cron.expression import MAX_EXPRESSION_LENGTH, CronExpression
from agentcron.cron.fields import CronFields, FieldSpec
from agentcron.cron.presets import MACROS, PRESETS
from agentcron.cron.validate import ValidationResult

__all__ = [
    "MACROS",
    "MAX_EXPRESSION_LENGTH",
    "PRESETS",
    "CronError",
    "CronExpression",
    "CronFields",
    "FieldSpec",
    "ValidationResult",
]
