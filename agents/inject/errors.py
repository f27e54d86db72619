"""The one error inject reports: where (an input, a document, a field) and what is wrong."""

from __future__ import annotations


class InjectError(Exception):
    """Bad input or flags: the CLI prints `pod-agents inject: <where>: <field>: <problem>`
    and exits 2.

    `where` names the input and document (`deploy.yaml: document #2 Deployment/shop`), or
    is empty for a flag; `field` is a path in the document (`spec.template.spec.containers`),
    a flag (`--ship`) or a position (`line 3, column 7`).
    """

    def __init__(self, field: str, problem: str, where: str = "") -> None:
        super().__init__(problem)
        self.field, self.problem, self.where = field, problem, where

    def located(self, where: str) -> InjectError:
        """The same error, said of document `where` (kept if it already names one)."""
        return self if self.where else InjectError(self.field, self.problem, where)

    def __str__(self) -> str:
        return ": ".join(part for part in (self.where, self.field, self.problem) if part)
