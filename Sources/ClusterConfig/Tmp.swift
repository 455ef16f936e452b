// placeholder-for-build
