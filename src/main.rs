//! The `keywarden` admin command.
fn main() -> std::process::ExitCode {
    keywarden::cli::main()
}
