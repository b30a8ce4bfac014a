//! Placeholder: the vset Redis module lands with issue 2.
