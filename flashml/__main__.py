from flashml.cli import main

main()
