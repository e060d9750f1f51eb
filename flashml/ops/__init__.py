"""Operations on a node from the command line: backup and restore, and the doctor's checks."""
