"""HTTP routes, one router per noun: thin, validate, call core, return."""
