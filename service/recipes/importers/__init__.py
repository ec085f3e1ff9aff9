"""Importers: recipes of other platforms converted into Titan recipes, every field
reported as kept, translated, dropped or refused (see ``report``)."""

from service.recipes.importers.report import Conversion, ImportRefused, Row
from service.recipes.importers.saturn import convert

__all__ = ["Conversion", "ImportRefused", "Row", "convert"]
