"""What users share: secrets, folders, registered images."""
