//! Placeholder: the vset extension lands with issue 3.
