"""The package version, written into the wheel and every manifest."""

VERSION = "0.1.0"
