package datadir

import (
	"fmt"
	"io/fs"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows a data dir is private when its DACL is protected (nothing is
// inherited from the parent) and grants access to its owner only; files
// created in it inherit that. SYSTEM and the Administrators group are also
// tolerated on a key file, as OpenSSH for Windows tolerates them: they can
// read every file anyway.

// makePrivate creates dir and gives it an owner-only, protected DACL that
// its files and subdirectories inherit.
func makePrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := ownerOnly(dir, windows.SUB_CONTAINERS_AND_OBJECTS_INHERIT); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return nil
}

// privateFile gives a file the process just created an owner-only DACL.
func privateFile(f *os.File) error { return ownerOnly(f.Name(), windows.NO_INHERITANCE) }

// ownerOnly replaces path's DACL by one granting its owner (the current
// user) full control, and nobody else anything.
func ownerOnly(path string, inherit uint32) error {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return err
	}
	acl, err := windows.ACLFromEntries([]windows.EXPLICIT_ACCESS{{
		AccessPermissions: windows.GENERIC_ALL,
		AccessMode:        windows.GRANT_ACCESS,
		Inheritance:       inherit,
		Trustee: windows.TRUSTEE{
			TrusteeForm:  windows.TRUSTEE_IS_SID,
			TrusteeType:  windows.TRUSTEE_IS_USER,
			TrusteeValue: windows.TrusteeValueFromSID(user.User.Sid),
		},
	}}, nil)
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil)
}

// checkPrivate refuses a file whose DACL grants access to anyone but its
// owner, SYSTEM and Administrators.
func checkPrivate(path string, _ fs.FileInfo) error {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION|windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	if dacl == nil {
		return fmt.Errorf("key file %s has no access list: anyone can read it", path)
	}
	system, _ := windows.CreateWellKnownSid(windows.WinLocalSystemSid)
	admins, _ := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return fmt.Errorf("key file %s: %w", path, err)
		}
		if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE {
			continue // denials take nothing away from privacy
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		if sid.Equals(owner) || system != nil && sid.Equals(system) || admins != nil && sid.Equals(admins) {
			continue
		}
		return fmt.Errorf("key file %s is accessible by %s; allow its owner only (icacls %s /inheritance:r /grant:r %%USERNAME%%:F)", path, sid, path)
	}
	return nil
}

// syncDir does nothing: Windows cannot open a directory to flush it, and
// NTFS journals renames.
func syncDir(string) error { return nil }
