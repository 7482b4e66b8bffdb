"""Which feature set the pipeline uses: the default IPTV set, or a provider's own module.

A spec is ``"package.module:ATTRIBUTE"`` naming a :class:`~features.definitions.FeatureSet` (or a function
without arguments returning one). Set it with the CLI option ``--feature-set`` or the environment variable
``RISKGATE_FEATURE_SET``; training stores the set's contract with each model and serving checks it.
"""

from __future__ import annotations

import importlib
import logging

from core.errors import RiskgateError
from features.definitions import FeatureSet

logger = logging.getLogger(__name__)

DEFAULT_SPEC = "features.iptv:FEATURE_SET"


class FeatureSetSpecError(RiskgateError, ValueError):
    """A feature-set spec does not name an importable FeatureSet."""


def load_feature_set(spec: str | None = None) -> FeatureSet:
    """The feature set named by ``spec`` (``"module:attribute"``); None means the default IPTV set."""
    spec = spec or DEFAULT_SPEC
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise FeatureSetSpecError(
            f"feature set spec {spec!r} must look like 'package.module:ATTRIBUTE' (e.g. {DEFAULT_SPEC!r})"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise FeatureSetSpecError(
            f"feature set spec {spec!r}: cannot import module {module_name!r} ({error}); "
            "is it on PYTHONPATH / installed?"
        ) from error
    if not hasattr(module, attribute):
        raise FeatureSetSpecError(f"feature set spec {spec!r}: module {module_name!r} has no {attribute!r}")
    found = getattr(module, attribute)
    if callable(found) and not isinstance(found, FeatureSet):
        found = found()
    if not isinstance(found, FeatureSet):
        raise FeatureSetSpecError(
            f"feature set spec {spec!r} names a {type(found).__name__}, not a features.definitions.FeatureSet"
        )
    logger.info("feature set %s (%s): %d features, hash %s", found.name, spec, len(found.names), found.hash)
    return found
