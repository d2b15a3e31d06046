"""What tests and benchmarks build on, one copy of each: documents, models and servers, chat calls and
waits. Test-only code lives here, never in the installed package."""
