#ifndef C_ISAL_SHIM_H
#define C_ISAL_SHIM_H
/* Intel ISA-L's inflate (Debian libisal-dev): the readers' gzip, about three times zlib's speed. */
#include <isa-l/igzip_lib.h>
#endif
