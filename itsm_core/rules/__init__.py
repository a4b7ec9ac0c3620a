"""The organisation's rules: classification (rules, then trained models), ITIL priority and routing.

- `conditions.py` — the condition language rules and policies match tickets with;
- `spec.py`       — the `rules:` section's shapes, as written in YAML;
- `engine.py`     — `Rules`: the section compiled once per run, deciding a batch of tickets at a time;
- `routing.py`    — which agent of a group takes a ticket (skills, load, round-robin, working hours);
- `priority.py`   — the impact × urgency matrix;
- `model.py`      — the trained text classifier (scikit-learn).

Writing the decisions is the sync pipeline's job (`itsm_core/sync/decide.py`).
"""

from itsm_core.rules.engine import Decided, Rules
from itsm_core.rules.spec import RulesConfig

__all__ = ["Decided", "Rules", "RulesConfig"]
