#include <stdio.h>
int main(void) { fputs("lowbit: not built yet\n", stderr); return 1; }
