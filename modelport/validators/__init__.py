"""Format-agnostic validation: input generation, comparison, layout checks, report."""
