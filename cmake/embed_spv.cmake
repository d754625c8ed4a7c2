# Turn a SPIR-V file into a C array of 32-bit words (little-endian host, as
# the SPIR-V magic number check at module creation would catch otherwise).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR words "${n} / 8")
string(REGEX REPLACE "([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])" "0x\\4\\3\\2\\1u," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f]+u,){8})" "\\1\n    " body "${body}")
file(WRITE ${OUT} "/* Generated from ${NAME}.comp; do not edit. */\n#include <stddef.h>\n#include <stdint.h>\nconst uint32_t lade_spv_${NAME}[${words}] = {\n    ${body}\n};\nconst size_t lade_spv_${NAME}_bytes = sizeof(lade_spv_${NAME});\n")
