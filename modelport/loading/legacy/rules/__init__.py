"""Upgrade rules for configs written by older Keras versions, in application order."""

from __future__ import annotations

from modelport.loading.legacy.rules import keras1, keras2, structure
from modelport.loading.legacy.rules.base import Context, Rule

__all__ = ["RULES", "Rule", "Context", "get_rule"]

# Explicit and ordered: structural fixes that later rules rely on first (the Merge of
# branch models reads branches in their stored form; a Sequential must be a dict before
# its first layer can be found), class renames before the
# argument renames keyed on the new class names, the InputLayer late (it reads the
# Keras 2 argument names and the first layer's dtype).
RULES: list[Rule] = [fn.rule for fn in (  # type: ignore[attr-defined]
    structure.sequential_merge_branches,
    structure.sequential_list_config,
    structure.keras1_node_refs,
    structure.legacy_merge_layer,
    keras1.keras1_class_names,
    keras1.keras1_removed_layers,
    keras1.keras1_time_distributed_dense,
    keras1.keras1_dim_ordering,
    keras1.keras1_input_dtype,
    keras1.keras1_input_dim,
    keras1.keras1_dense_args,
    keras1.keras1_dropout_args,
    keras1.keras1_embedding_args,
    keras1.keras1_conv_args,
    keras1.keras1_pooling_args,
    keras1.keras1_recurrent_args,
    keras1.keras1_batchnorm_args,
    keras1.keras1_prelu_args,
    keras1.keras1_zero_padding_dict,
    keras1.keras1_objects,
    keras2.cudnn_rnn,
    keras2.gru_reset_after_default,
    keras2.rnn_time_major,
    keras2.conv_groups,
    keras2.initializer_dtype,
    keras2.variance_scaling_normal,
    keras2.spatial_dropout_trainable,
    keras2.wrapper_inner_module,
    structure.sequential_input_layer,
    keras2.embedding_ids_dtype,  # after the InputLayer took the ids' dtype from it
)]


def get_rule(name: str) -> Rule:
    """The rule called ``name``; raises ``KeyError`` listing the known names."""
    for r in RULES:
        if r.name == name:
            return r
    raise KeyError(f"no upgrade rule {name!r}; known: {', '.join(r.name for r in RULES)}")
