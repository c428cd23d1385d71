"""mitogen's ``mitogen_linear`` strategy, loaded from the installed ``mitogen`` package (requirements-dev.txt).

ansible-core finds strategy plugins by directory; mitogen ships its own under the package's
``ansible_mitogen/plugins/strategy``, whose path depends on the virtualenv's Python version. This file
is the same proxy as mitogen's: ansible's plugin loader finds it in the project's ``plugins/strategy``
(``strategy_plugins`` in the molecule configuration), and the real class comes from the package by a
regular import, so that mitogen's connection and action plugins are registered once. See
https://mitogen.networkgenomics.com/ansible_detailed.html (Installation).
"""

from __future__ import annotations

import ansible_mitogen.loaders
import ansible_mitogen.strategy

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    """ansible-core's linear strategy with mitogen's connection multiplexer."""
