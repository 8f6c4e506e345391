//! The `keywarden` admin CLI (placeholder, filled in below).
