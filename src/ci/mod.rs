//! CI uploads: coverage and test report parsers (being written).
