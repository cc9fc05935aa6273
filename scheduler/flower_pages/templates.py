"""Flower's own templates with one link more, and the Budgets page's template beside them.

Flower's navigation bar is its template ``navbar.html``, which every page
includes. Rather than a copy of it (or of any Flower template) that would
fall behind Flower's, the Flower app is given this loader (tornado's
``template_loader`` setting): it loads Flower's templates from Flower's own
folder as Flower's loader would, inserts the Budgets link as the last item of
the navbar's first list (after Workers, Tasks, Broker) when it loads
``navbar.html``, and loads the pages of this package (``budgets.html``) from
``templates/`` here, so they extend Flower's ``base.html`` and look like Flower.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from tornado.template import Loader, Template

log = logging.getLogger(__name__)

#: The pages of this package, loaded from its ``templates`` folder; any other name is Flower's.
OWN: Final = frozenset({"budgets.html"})
OWN_FOLDER: Final = Path(__file__).parent / "templates"
#: Where the link goes: the end of the navbar's first list (Flower 2.2's ``<ul class="app-nav navbar-nav">``).
NAV_LIST: Final = '<ul class="app-nav navbar-nav">'
LINK: Final = """
        <li class="nav-item">
          <a class="nav-link{% if active_tab == 'budgets' %} active{% end %}"
            href="{{ reverse_url('budgets') }}"
            {% if active_tab == 'budgets' %}aria-current="page"{% end %}>Budgets</a>
        </li>
      """


def with_budgets_link(navbar: str) -> str:
    """Flower's ``navbar.html`` with the Budgets link after its last primary item; unchanged (and a warning
    logged) when its layout is not the one this knows, so Flower still works and /budgets still answers."""
    start = navbar.find(NAV_LIST)
    end = navbar.find("</ul>", start) if start >= 0 else -1
    if end < 0:
        log.warning("Flower's navbar.html has no %r list: the Budgets link is not shown (the page is at /budgets)",
                    NAV_LIST)
        return navbar
    return navbar[:end].rstrip() + LINK + navbar[end:]


class FlowerTemplates(Loader):
    """Flower's template folder, with the Budgets link in its navbar and this package's pages."""

    def _create_template(self, name: str) -> Template:
        if name in OWN:
            return Template((OWN_FOLDER / name).read_bytes(), name=name, loader=self)
        if name == "navbar.html":
            text = (Path(self.root) / name).read_text(encoding="utf-8")
            return Template(with_budgets_link(text), name=name, loader=self)
        return super()._create_template(name)
