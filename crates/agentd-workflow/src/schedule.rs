//! schedule grammar
