#!/usr/bin/perl
# Verify the DKIM signature of one message with Perl's Mail::DKIM, an implementation
# independent of dkimpy, against a key record given on the command line (no real DNS).
#
#   perl tests/dkim_verify.pl MESSAGE_FILE DNS_NAME TXT_VALUE
#
# TXT queries for DNS_NAME (e.g. "s1._domainkey.example.com") answer TXT_VALUE; any
# other query answers NXDOMAIN. Prints "pass" or "<result> (<detail>)" and the
# Mail::DKIM version on stderr; exits 0 on pass, 1 otherwise, 2 on bad usage.
use strict;
use warnings;

use Mail::DKIM;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
use Net::DNS;

@ARGV == 3 or do {
    print STDERR "usage: $0 MESSAGE_FILE DNS_NAME TXT_VALUE\n";
    exit 2;
};
my ( $message_file, $dns_name, $txt_value ) = @ARGV;
$dns_name =~ s/\.$//;

# Mail::DKIM::DNS::query is the single place Mail::DKIM asks DNS (query_async and
# the public key lookup go through it); it returns a list of Net::DNS::RR objects,
# or an empty list with $@ set to the rcode.
{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ( $domain, $type ) = @_;
        $domain =~ s/\.$//;
        if ( lc $domain eq lc $dns_name && uc $type eq 'TXT' ) {
            $@ = 'NOERROR';
            # A TXT record is a list of strings of at most 255 octets each.
            my @strings = unpack '(a255)*', $txt_value;
            return Net::DNS::RR->new(
                owner   => $domain,
                type    => 'TXT',
                txtdata => \@strings,
            );
        }
        $@ = 'NXDOMAIN';
        return;
    };
}

open my $fh, '<:raw', $message_file or die "cannot read $message_file: $!\n";
my $verifier = Mail::DKIM::Verifier->new();
while ( my $chunk = <$fh> ) {
    $verifier->PRINT($chunk);
}
close $fh;
$verifier->CLOSE();

print STDERR "Mail::DKIM $Mail::DKIM::VERSION\n";
my $result = $verifier->result;
if ( $result eq 'pass' ) {
    print "pass\n";
    exit 0;
}
print $verifier->result_detail, "\n";
exit 1;
