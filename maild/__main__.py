from maild.cli import main

main(prog_name="maild")  # as the installed command is named, in usage and error lines
