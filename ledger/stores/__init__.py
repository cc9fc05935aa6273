"""The stores of :class:`ledger.store.Ledger`: one class per part of the ledger, each over the shared ``ledger.db.Db``.

``Ledger`` builds each one and holds it as an attribute (``ledger.runs``,
``ledger.budgets`` ...); a store that needs another is given it there, never
inherits it. Which store holds what, and where a new table's queries go:
docs/architecture.md, "The ledger".
"""
