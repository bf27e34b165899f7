/* The version of the library actually linked (dsc.h holds the one place
 * the version is written; the Makefile, pkg-config and Python read it). */
#include "dsc.h"

unsigned dsc_version_number(void)
{
    return DSC_VERSION_NUMBER;
}

const char *dsc_version_string(void)
{
    return DSC_VERSION_STRING;
}
