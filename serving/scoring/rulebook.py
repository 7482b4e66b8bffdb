"""The analysts' rules and lists as the decision path serves them: a holder of the current book.

:class:`RuleBookHolder` holds one :class:`rules.book.RuleBook`; :meth:`RuleBookHolder.install` compiles a new
one from rules and lists and replaces the reference in one assignment (as
:class:`serving.scoring.models.ModelHolder` swaps models), so a request evaluates one book from start to end.
The service installs the rules and lists of its store (:mod:`serving.store.operations`) whenever the store's
change counter moves (:meth:`serving.api.service.Service.refresh_rules`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from events.schema import ExtensionField
from rules.book import RuleBook, RuleSpec
from rules.lists import MemberList
from rules.schema import Schema
from serving.scoring.billing import with_builtin

logger = logging.getLogger(__name__)


class RuleBookHolder:
    """The current :class:`RuleBook`; reading it is one attribute access, replacing it one assignment."""

    def __init__(
        self,
        schema: Schema,
        extension: Sequence[ExtensionField] = (),
        on_error: Callable[[RuleSpec], None] | None = None,
        builtin: Sequence[RuleSpec] = (),
    ) -> None:
        #: the served feature set's schema, without lists (each book adds its own)
        self.schema = schema
        #: rules served with every book unless it has one of the same name (the billing checks' rules)
        self.builtin = tuple(builtin)
        #: whether the book served holds only the built-in rules as they are (none matches an attempt that
        #: fails no billing check: the decision path need not gather the values)
        self.builtin_only = True
        #: the provider's extension fields (lists of its key and category fields)
        self.extension = tuple(extension)
        self._on_error = on_error
        self._book = RuleBook(on_error=on_error)
        self.lock = threading.Lock()

    @property
    def current(self) -> RuleBook:
        return self._book

    def install(self, specs: Sequence[RuleSpec], lists: Mapping[str, MemberList]) -> RuleBook:
        """Compile ``specs`` over ``lists`` and serve them from now on (the previous book until this returns);
        a rule that does not compile raises :class:`rules.book.RuleBookError` and nothing changes."""
        served = with_builtin(specs, self.builtin)
        book = RuleBook.compile(served, lists, self.schema, self._on_error)
        with self.lock:
            self._book = book
            self.builtin_only = all(spec in self.builtin for spec in served if spec.enabled)
        logger.info("rules now served: %d enabled rule(s), %d list(s)", len(book), len(book.lists))
        return book
