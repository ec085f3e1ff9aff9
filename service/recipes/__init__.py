"""Recipes: the JSON documents users write, their models, schema and diffs."""

from service.recipes.models import (
    ClusterRecipe,
    DaskClusterSpec,
    JobRecipe,
    Recipe,
    WorkspaceRecipe,
    parse_recipe,
)

__all__ = [
    "ClusterRecipe",
    "DaskClusterSpec",
    "JobRecipe",
    "Recipe",
    "WorkspaceRecipe",
    "parse_recipe",
]
