"""Rules and lists: the analyst's conditions over an attempt, checked when saved and fast when scored.

* :mod:`rules.syntax` — the expression language's grammar (lark) and syntax tree, with positions;
* :mod:`rules.schema` — what a rule may read (:func:`rules.schema.schema_for` a served feature set);
* :mod:`rules.checker` — type-checking against a schema, errors naming the position and the closest name;
* :mod:`rules.compiler` — the evaluator over one attempt (closures; three-valued logic for missing values);
* :mod:`rules.lists` — allow and block lists (values, IP addresses and CIDR ranges), expiry, CSV import;
* :mod:`rules.book` — a stored rule (:class:`rules.book.RuleSpec`), its actions and the order they run in;
* :mod:`rules.errors` — the errors, all :class:`core.errors.InputError` (HTTP 422, exit status 2).

This package is the library only: storing rules and lists, their versions, their order and their actions
belong to the service.
"""
